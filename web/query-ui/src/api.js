// Calls to Strata's Prometheus-compatible read API. Every call carries the tenant chosen on the page in
// X-Scope-OrgID, and every failure becomes an APIError whose message is the one the server put in the
// Prometheus error envelope, so the page shows what the server said rather than a bare status code.

// The API is addressed relative to the page (served at <prefix>/query), so the page keeps working behind
// a reverse proxy that mounts Strata under a path prefix.
const apiBase = new URL('prometheus/api/v1/', document.baseURI);

export class APIError extends Error {
  constructor(message, { status = 0, errorType = '' } = {}) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.errorType = errorType;
  }
}

// apiURL returns the URL of an API path (such as "query_range") with its parameters; an array value
// repeats the parameter (match[]).
export function apiURL(path, params = {}) {
  const url = new URL(path, apiBase);
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v));
  }
  return url;
}

// getAPI fetches an API path for a tenant and resolves to the envelope's data and warnings.
export async function getAPI(tenant, path, params, { signal } = {}) {
  const headers = new Headers({ Accept: 'application/json' });
  if (tenant) headers.set('X-Scope-OrgID', tenant);
  let response;
  try {
    response = await fetch(apiURL(path, params), { headers, signal, credentials: 'same-origin' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError(`cannot reach the server: ${err.message}`);
  }
  const body = await response.text();
  let envelope = null;
  try {
    envelope = JSON.parse(body);
  } catch {
    // Errors from outside the API handler (a proxy, the tenant check of some deployments) are plain text.
  }
  if (envelope && typeof envelope === 'object' && 'status' in envelope) {
    if (envelope.status === 'success' && response.ok) {
      return { data: envelope.data, warnings: envelope.warnings || [], infos: envelope.infos || [] };
    }
    throw new APIError(envelope.error || `${response.status} ${response.statusText}`, {
      status: response.status,
      errorType: envelope.errorType || '',
    });
  }
  const text = body.trim() || response.statusText;
  throw new APIError(response.ok ? `unexpected answer: ${text.slice(0, 500)}` : `${response.status}: ${text.slice(0, 500)}`, {
    status: response.status,
  });
}
