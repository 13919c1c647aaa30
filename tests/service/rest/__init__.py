"""Unit tests of service/rest/ modules, at mirrored paths: each module without a live server."""
