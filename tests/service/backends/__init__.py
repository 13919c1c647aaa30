"""Unit tests of service/backends/, at mirrored paths."""
