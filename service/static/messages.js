// API errors as a person reads them: a headline per error code, the API's own message as the detail.

const HEADLINES = {
  network_error: "The service cannot be reached",
  payload_too_large: "The file is too large",
  image_too_large: "The image has too many pixels",
  unsupported_media_type: "This file type is not accepted",
  content_type_mismatch: "This file type is not accepted",
  unsupported_format: "This image format is not supported",
  empty_image: "The image is empty",
  corrupt_image: "The image could not be decoded",
  invalid_image: "This file is not an image",
  validation_error: "An option has an invalid value",
  mesh_unavailable: "This server cannot return a mesh",
  queue_full: "The server is busy",
  not_ready: "The model is still warming up",
  backend_unavailable: "The inference backend is unavailable",
  deadline_exceeded: "The request timed out",
};

/** {headline, detail, code} for an ApiError; keySent tells a missing key from a wrong one. */
export function describeError(error, keySent) {
  const code = error.status ? `HTTP ${error.status} · ${error.code}` : error.code;
  if (error.code === "unauthorized") {
    return {
      headline: keySent ? "The API key was not accepted" : "This server needs an API key",
      detail: keySent ? "Check the key in the API key field above." : "Enter it in the API key field above.",
      code,
    };
  }
  let detail = error.message;
  if (error.retryAfterSeconds !== null) {
    detail += ` (retry after ${error.retryAfterSeconds} s)`;
  }
  return { headline: HEADLINES[error.code] ?? "The request failed", detail, code };
}
