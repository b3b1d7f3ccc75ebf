"""Real kubeadm as the judge of what kubeinit's node-local phases write (the "oracle").

`hack/kubeadm-oracle` runs the real kubeadm phases in a private mount namespace over a
copy-on-write view of the host; these tests render the same config with kubeinit, parse both
outputs into facts and fail on every difference that `allowlist.yaml` does not explain.
"""
