"""Scoring a map against a query pass: ground truth, recall@N, raw vs filtered, PR curves, plots."""
