"""One reader per file format, each returning an :class:`stkd.data.container.STData` (see
:mod:`stkd.data.loaders` for the contract every reader keeps and the dispatch on ``data.source``).

- :mod:`.wide`: ``csv-wide``; :mod:`.long`: ``csv-long``, ``parquet-long``; :mod:`.metr_la`: ``metr-la-h5``
  (and the DCRNN adjacency pickle); :mod:`.pems`: ``pems-npz``;
- :mod:`.side_files`: node locations, the adjacency matrix, pairwise distances;
- :mod:`.common`: what they share (CSV checks, numeric and timestamp columns, the regular grid).
"""
