"""Accuracy instruments: the WIDER FACE validation protocol and landmark NME.

Numpy only; the plots import matplotlib lazily."""
