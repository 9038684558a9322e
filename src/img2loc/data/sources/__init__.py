"""Photo sources: local folders, tables, OSV-5M and online APIs."""
