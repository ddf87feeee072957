"""What each pod cost: its identity and build (`identity`), billed shape and prices (`shape`, `pricing`), the SQLite
ledger of billed intervals (`ledger`), the provider wrapper that feeds it (`recorder`), Prometheus counters
(`metrics`) and the per-build reports (`reports`, `html_report`).

Sits beside node/pods/kubelet: it may import providers, kube, config, util, errors and clock, never the controllers.
"""
