"""Experiment results: the analysis of impressions and outcomes per variant (analysis.py), its
text report (report.py), the metrics API (api.py) and the admin results page (admin.py)."""
