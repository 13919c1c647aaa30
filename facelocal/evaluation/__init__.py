"""Accuracy instruments: the WIDER FACE validation protocol and landmark NME (numpy only; plots import matplotlib lazily)."""
