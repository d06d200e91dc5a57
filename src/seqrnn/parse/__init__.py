"""Raw log lines -> templates (drain3) -> events and sessions, with the index back to the lines.

- :mod:`.logformat` splits a line into the fields of a Loghub-style ``--log-format``;
- :mod:`.masking` masks the variable parts of the message;
- :mod:`.miner` mines templates with drain3's Drain, its state saved as plain JSON;
- :mod:`.parser` puts the three together, one line in, one event out;
- :mod:`.grouping` groups lines into sessions (ids, a field, time windows, line counts);
- :mod:`.pipeline` parses files into a parsed folder, :mod:`.folder` reads and describes it;
- :mod:`.explain` goes back from an anomaly to its templates, parameters and raw lines;
- :mod:`.sniff` tells raw log text from event sequences;
- :mod:`.accuracy` is the Loghub benchmark's grouping accuracy.

Nothing here is imported by ``import seqrnn`` (drain3 loads only when a log is parsed).
"""
