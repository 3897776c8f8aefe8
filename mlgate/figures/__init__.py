"""Every figure mlgate draws, a module for each kind of thing a figure shows, and the worker that renders them.

One setup (:mod:`.style`) and one layout of images (:mod:`.layout`) for every figure; the data-stats
figures: example images per class (:mod:`.samples`), distributions and drift (:mod:`.distributions`),
items beside what they are compared with (:mod:`.items`), the baseline's loss (:mod:`.training`);
items made displayable (:mod:`.images`); the model-gate figures (:mod:`.model`); and the worker
process that renders typed jobs (:mod:`.worker`).

Importing this package imports nothing heavy: matplotlib is imported when the first figure is drawn.
"""
