// Package charttest tests the Helm chart production/helm/strata without a cluster: helm lint and
// helm template (helm as a library) for the default values and every example values file, every
// rendered manifest decoded strictly with the Kubernetes API types, and every Strata container's
// arguments accepted by `strata -config.verify`. It is a module of its own so that helm's and the
// Kubernetes libraries' dependencies stay out of Strata's go.mod.
package charttest
