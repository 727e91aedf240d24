"""Shared plumbing of keras_longtail (private: no public API, may change without notice).

Every method folder and public package may import from here; nothing here imports a method.
"""
