"""What the user reads: JSON findings and the per-event table (:mod:`.findings`), the figures
(:mod:`.plots`, one look for all), the summary ``detect`` ends with (:mod:`.summary`), and the
self-contained HTML report (:mod:`.page` gathers what a folder holds, :mod:`.html` writes it).

The names other modules use are importable from here; matplotlib loads only when a figure is drawn.
"""

from .findings import EVENT_FIELDS, MAX_LISTED, finding_dict, fmt, load_templates, token_name, write_event_table
from .plots import PLOT_STYLE, figure, plot_curves, plot_findings, pyplot

__all__ = ["EVENT_FIELDS", "MAX_LISTED", "PLOT_STYLE", "figure", "finding_dict", "fmt", "load_templates",
           "plot_curves", "plot_findings", "pyplot", "token_name", "write_event_table"]
