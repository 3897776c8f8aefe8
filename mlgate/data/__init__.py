"""``mode: data-stats``: dataset layouts, mergeable statistics, changes, drift, findings, gates and the data report."""
