"""Every figure mlgate draws: one setup (:mod:`.style`), the data-stats figures (:mod:`.data`), the
model-gate figures (:mod:`.model`) and the worker process that renders typed jobs (:mod:`.worker`).

Importing this package imports nothing heavy: matplotlib is imported when the first figure is drawn.
"""
