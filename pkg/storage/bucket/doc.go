// Package bucket gives Strata's components access to the object storage that holds every tenant's
// blocks: the -blocks-storage.* configuration of the backend (filesystem, S3, GCS or Azure, through
// thanos-io/objstore), a client instrumented with strata_bucket_* metrics, a per-tenant view of the
// bucket (objects under "<tenant>/"), and a failure-injecting wrapper for tests of outages.
package bucket
