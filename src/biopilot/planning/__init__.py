"""Multi-product modular site scheduling."""
