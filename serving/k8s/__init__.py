"""Kubernetes manifests for real TF Serving (Deployment/Service/ConfigMap, KServe).

``python -m serving.k8s --config configs/taxi.yaml --out build/k8s`` renders
them from the dataset config; see docs/kubernetes.md.
"""
