"""DensePose inside the worker: a photo alone -> DensePose's IUV and INDS images.

  store.py    where the model file is found (--densepose-model, HUMANTEX_DENSEPOSE_MODEL, the worker's
              models folder, the user's cache) and how it arrives (fetch, install); standard library only
  extract.py  the model's input (preprocess) and its raw outputs -> IUV + INDS at the photo's resolution,
              written as DensePose's own IUV.png / INDS.png (what `humantex unwrap` reads)
  model.py    load once per process (torchvision first), run on the worker's device or the CPU: `densepose`
  standin.py  a STAND-IN TorchScript model with the export's interface, built from a real IUV (tests,
              benchmarks); never used for a real job unless a user passes it explicitly

Nothing here imports torch at import time except standin.py.
"""
