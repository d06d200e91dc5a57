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


# The raw HDFS lines of Loghub's 2k sample, with their format and session ids (for seqrnn parse).
HDFS_LOG = "hdfs_2k.log"
HDFS_LOG_FORMAT = "<Date> <Time> <Pid> <Level> <Component>: <Content>"
HDFS_SESSION = r"blk_-?\d+"


def hdfs_log_sample(folder: str | None = None) -> str:
    """Unpack the 2,000 raw HDFS log lines into ``folder`` (a new temporary one by default); their path."""
    folder = folder or tempfile.mkdtemp(prefix="seqrnn-hdfs-log-")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, HDFS_LOG)
    with gzip.open(os.path.join(HERE, HDFS_LOG + ".gz"), "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    return path


def parse_hdfs_log_sample(out: str | None = None) -> str:
    """Parse the raw HDFS sample into a parsed folder (sessions by block id, see ``seqrnn parse``) at
    ``out`` (a new temporary folder by default); its path. The raw log is unpacked beside it, so
    that the folder's events point to real lines."""
    from ..parse.grouping import IdGrouper
    from ..parse.parser import Parser, ParserSettings
    from ..parse.pipeline import parse_logs

    out = out or tempfile.mkdtemp(prefix="seqrnn-hdfs-parsed-")
    raw = hdfs_log_sample(os.path.join(out, "raw"))
    parse_logs([raw], out, Parser(ParserSettings(log_format=HDFS_LOG_FORMAT)), IdGrouper(HDFS_SESSION))
    return out
