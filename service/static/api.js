// A client of the public REST API: the same requests any program would send.

/** Any failed call: the API's {error: {code, message}}, or a transport failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterSeconds = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * POST /v1/detect with the image as multipart field "image" and the options as query parameters.
 * Resolves to {result, roundTripMs}; rejects with ApiError.
 */
export async function detect(image, options, apiKey) {
  const body = new FormData();
  body.append("image", image, image.name || "image");
  const started = performance.now();
  const response = await send(`/v1/detect?${queryString(options)}`, {
    method: "POST",
    body,
    headers: authorization(apiKey),
  });
  const result = await readJson(response);
  return { result, roundTripMs: performance.now() - started };
}

/**
 * POST /v1/anonymize with the image as multipart field "image": resolves to the covered image (a Blob in the
 * photo's own format); rejects with ApiError.
 */
export async function anonymize(image, mode, apiKey) {
  const body = new FormData();
  body.append("image", image, image.name || "image");
  const response = await send(`/v1/anonymize?${queryString({ mode })}`, {
    method: "POST",
    body,
    headers: authorization(apiKey),
  });
  if (!response.ok) {
    await readJson(response);
  }
  return response.blob();
}

/**
 * Whether this server can return a mesh, in its own words: ask for one on a tiny image.
 * Resolves to {available: true} or {available: false, reason}; rejects with ApiError when the
 * question could not be answered (no key, warming up, unreachable).
 */
export async function probeMesh(apiKey) {
  const canvas = new OffscreenCanvas(8, 8);
  canvas.getContext("2d").fillRect(0, 0, 8, 8);
  const blank = await canvas.convertToBlob({ type: "image/png" });
  try {
    await detect(blank, { return_mesh: true, return_landmarks: false }, apiKey);
    return { available: true };
  } catch (error) {
    if (error.status === 422) {
      return { available: false, reason: error.message };
    }
    throw error;
  }
}

function queryString(options) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(options)) {
    if (value !== null && value !== undefined && value !== "") {
      params.set(name, String(value));
    }
  }
  return params.toString();
}

function authorization(apiKey) {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network_error", `the service at ${location.origin} did not answer (${error.message})`);
  }
}

async function readJson(response) {
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: a proxy's error page, say. Reported below with the status.
  }
  if (response.ok && body !== null) {
    return body;
  }
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  const error = body?.error;
  throw new ApiError(
    response.status,
    error?.code ?? `http_${response.status}`,
    error?.message ?? (text.trim() || response.statusText || "no response body"),
    Number.isFinite(retryAfter) ? retryAfter : null,
  );
}
