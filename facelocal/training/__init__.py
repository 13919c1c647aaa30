"""Training: anchor matching, the multi-task loss with OHEM, the learning-rate schedule and the trainer."""
