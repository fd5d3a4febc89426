"""AbuseWatch violence classifier: datasets, preprocessing, model, training and runtime.

This package must stay free of Django imports so workers and training scripts can use it alone.
"""
