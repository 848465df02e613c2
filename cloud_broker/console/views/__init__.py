"""The console's pages, one module per part of head office's day."""
