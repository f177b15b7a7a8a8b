"""Daily aggregates behind the dashboards."""
