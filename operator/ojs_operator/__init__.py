"""ojs_operator: the Kubernetes operator of ojs-nats (Queue and CronJob custom resources).

Not named `operator`: that would shadow the standard library module. `crds` is the single
source of both CustomResourceDefinitions; it imports no kopf, so chart tooling can use it.
"""
