// The REST API client: every call carries the API key from
// sessionStorage as a bearer token; errors come back as ApiError with the
// API's message, field and status.

const KEY = "cordon.key";

export class ApiError extends Error {
  constructor(status, message, field) {
    super(field ? `${field}: ${message}` : message);
    this.status = status;
    this.field = field || "";
  }
}

export function key() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(k) {
  if (k) sessionStorage.setItem(KEY, k);
  else sessionStorage.removeItem(KEY);
}

export async function call(method, path, body, withKey = key()) {
  const headers = { Accept: "application/json" };
  if (withKey) headers.Authorization = `Bearer ${withKey}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the collector: ${e.message}`);
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, (data && data.error) || `${resp.status} ${resp.statusText}`, data && data.field);
  }
  return data;
}

export const get = (path) => call("GET", path);

// all fetches every page of a listing.
export async function all(path) {
  const items = [];
  let cursor = "";
  for (let i = 0; i < 100; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    if (!page.next) break;
    cursor = page.next;
  }
  return items;
}
