"""OII-guided hyperparameter search (DIBE paper, Sec. 3.1.2) and grid search with the same interface."""

from __future__ import annotations

from .search import SearchResult, format_trace, grid_search, load_trace, oii_guided_search
