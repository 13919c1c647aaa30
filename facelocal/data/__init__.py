"""Training data: annotation readers, the paper's augmentation and the torch dataset."""
