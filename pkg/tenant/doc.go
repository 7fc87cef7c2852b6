// Package tenant identifies the tenant a request belongs to. The tenant ID arrives in the X-Scope-OrgID
// HTTP header (or the x-scope-orgid gRPC metadata key between components), is validated once at the edge,
// and then travels in the request's context: read it with FromContext, never from a global or a field.
package tenant
