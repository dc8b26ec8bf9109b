"""Archives: many films and pictures in one batch, here or on a Ray cluster.

    from vidcolor.batch import run_batch
    run_batch("reels/", "out/", {"auto": True}, ray="local", workers=2)   # -> the summary

``plan`` reads what is to be coloured (a folder, or a CSV/JSON manifest with options per
row); ``run`` colours each job with the command's safety and writes ``OUTDIR/report.json``;
``cluster`` hands the jobs to Ray's workers (``pip install 'vidcolor[ray]'``).
"""

from vidcolor.batch.plan import Job, plan
from vidcolor.batch.run import REPORT, run_batch, run_job

__all__ = ["Job", "plan", "run_batch", "run_job", "REPORT"]
