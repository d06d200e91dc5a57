"""Small data sets shipped with the package (see ``NOTICE`` beside this file)."""

from __future__ import annotations

import gzip
import os
import tempfile

HERE = os.path.dirname(__file__)
# Anomalies among the test blocks of the full HDFS data set (16,838 of 569,478): the share at
# which "F1 at prevalence" is reported for HDFS.
PREVALENCE_HDFS = 16838 / (16838 + 552640)
HDFS_FILES = ("hdfs_train", "hdfs_test_normal", "hdfs_test_abnormal", "hdfs_templates.csv")


def hdfs_sample(folder: str | None = None) -> dict[str, str]:
    """Unpack the HDFS sample into ``folder`` (a new temporary one by default); name -> path."""
    folder = folder or tempfile.mkdtemp(prefix="seqrnn-hdfs-")
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name in HDFS_FILES:
        path = os.path.join(folder, name)
        with gzip.open(os.path.join(HERE, name + ".gz"), "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        out[name] = path
    return out
