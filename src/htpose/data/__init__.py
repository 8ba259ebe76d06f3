"""Data: skeleton-aware cameras, clip collections, data-set readers, windows and batches."""
