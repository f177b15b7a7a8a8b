"""Templates, campaigns, broadcasts and journeys arrive with the campaigns issue."""
