"""Generation at scale: a manifest of generate jobs run on Ray (`humantex batch`).

    manifest.py   JSON lines -> FarmJob(id, request), every line checked before anything runs
    adapter.py    the one bridge to the request type and core.job (fields -> request -> files)
    status.py     DIR/batch.status.jsonl and each job's key (inputs' content + weights + version)
    execute.py    one job into DIR/<id>/, exactly as `humantex generate` writes it (no Ray)
    runner.py     the Ray actors and the scheduling loop (retries, Ctrl+C); imports ray lazily

Only runner.py needs Ray, so a manifest can be checked, and a finished batch rerun, without it.
No bpy here; torch only inside the actors (execute.py imports core.job lazily).
"""
