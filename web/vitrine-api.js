// @ts-check
/**
 * vitrine-api.js: REST calls from Vitrine's own pages (the consoles, the buyer's page) to its API.
 *
 * A credential travels only as a bearer header or in a POST body: never in a URL, never in a log.
 * Every refusal becomes an ApiError carrying the server's typed {code, message} and the HTTP
 * status; a network failure is code "network", a reply that is not the server's JSON "http_<status>".
 */

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * fetch(`path`) with an optional bearer `token` and JSON `body`; resolves with the Response when it
 * is 2xx, else throws an ApiError.
 */
export async function request(method, path, { token = null, body = undefined } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "could not reach the server");
  }
  if (response.ok) return response;
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    /* not JSON: a proxy's error page */
  }
  const code = problem && typeof problem.code === "string" ? problem.code : `http_${response.status}`;
  const message = problem && typeof problem.message === "string" ? problem.message : response.statusText;
  throw new ApiError(response.status, code, message || "request failed");
}

export async function requestJson(method, path, options) {
  const response = await request(method, path, options);
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, "bad_response", "the server's answer was not JSON");
  }
}
