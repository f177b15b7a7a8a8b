"""Step 9, monitor (全监控): the dashboards head office watches the member operation on —
pool growth, lifecycle, tiers, points liability, RFM movement, sales and cohorts — read
from daily aggregates this app keeps up to date, never from the raw tables.

It sits last in the import order (scrm ← members ← touchpoints ← campaigns ← analytics):
it reads every other app and none reads it. The campaign funnel and attribution stay in
`campaigns`, beside the sends they judge; the dashboards here read their facts."""
