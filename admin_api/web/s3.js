// S3 from the browser: presigned requests straight to the S3 proxy (bytes never pass through the API).
import { api } from './api.js';

export const PART_SIZE = 8 * 1024 * 1024;          // multipart above this size, in parts of this size
const XML = 'application/xml';

export class S3Failure extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function text(node, tag) { const el = node.getElementsByTagName(tag)[0]; return el ? el.textContent : ''; }

export function explainFailure(status, code, message) {
  if (code === 'QuotaExceeded') return `Quota exceeded: ${message || 'this upload would go over a quota'}. Free some space or ask for a larger quota.`;
  if (status === 403 || code === 'AccessDenied') return `Access denied: you do not have permission for this (${code}${message ? `: ${message}` : ''}).`;
  if (status === 0) return 'The S3 proxy cannot be reached.';
  return `${code || 'Error'} (HTTP ${status})${message ? `: ${message}` : ''}`;
}

function failure(status, body) {
  let code = `HTTP${status}`; let message = '';
  if (body) {
    try {
      const doc = new DOMParser().parseFromString(body, XML);
      code = text(doc, 'Code') || code; message = text(doc, 'Message');
    } catch (e) { /* not XML */ }
  }
  return new S3Failure(status, code, explainFailure(status, code, message));
}

// Who signs: the console (the logged-in user's grants) or a folder link (its own key, no account).
const asUser = async (workspace, requests) => (await api('POST', '/console/presign', { workspace, requests })).urls;
let signer = asUser;

export function signAsUser() { signer = asUser; }

export function signWithLink(id, token) {
  signer = async (workspace, requests) => (await api('POST', `/links/${encodeURIComponent(id)}/presign`, { token, requests })).urls;
}

export async function presign(workspace, requests) { return signer(workspace, requests); }

// One request with XMLHttpRequest (upload progress); resolves with {status, body, etag}.
export function send(method, url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    if (body && typeof body === 'string') xhr.setRequestHeader('Content-Type', XML);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      const errorInBody = xhr.status === 200 && method === 'POST' && /<Error>/.test(xhr.responseText.slice(0, 512));
      if (xhr.status >= 300 || errorInBody) reject(failure(xhr.status === 200 ? 500 : xhr.status, xhr.responseText));
      else resolve({ status: xhr.status, body: xhr.responseText, etag: xhr.getResponseHeader('ETag') });
    };
    xhr.onerror = () => reject(new S3Failure(0, 'NetworkError', explainFailure(0, 'NetworkError', '')));
    xhr.send(body === undefined ? null : body);
  });
}

async function one(workspace, request, body, onProgress) {
  const [signed] = await presign(workspace, [request]);
  return send(signed.method, signed.url, body, onProgress);
}

export async function list(workspace, prefix) {
  const folders = []; const objects = []; let token = '';
  for (let page = 0; page < 20; page++) {
    const res = await one(workspace, { operation: 'ListObjectsV2', prefix, delimiter: '/', continuation_token: token });
    const doc = new DOMParser().parseFromString(res.body, XML);
    for (const p of doc.getElementsByTagName('CommonPrefixes')) folders.push(text(p, 'Prefix'));
    for (const c of doc.getElementsByTagName('Contents')) {
      objects.push({ key: text(c, 'Key'), size: Number(text(c, 'Size')), modified: text(c, 'LastModified') });
    }
    token = text(doc, 'NextContinuationToken');
    if (text(doc, 'IsTruncated') !== 'true' || !token) break;
  }
  return { folders, objects };
}

export async function remove(workspace, key) { await one(workspace, { operation: 'DeleteObject', key }); }

export async function downloadUrl(workspace, key) {
  const [signed] = await presign(workspace, [{ operation: 'GetObject', key, download_as: key.split('/').pop() }]);
  return signed.url;
}

// Upload one file: a single PUT, or multipart for large files; onProgress(bytesSent).
export async function upload(workspace, key, file, onProgress) {
  if (file.size <= PART_SIZE) return one(workspace, { operation: 'PutObject', key }, file, onProgress);
  const created = await one(workspace, { operation: 'CreateMultipartUpload', key });
  const uploadId = text(new DOMParser().parseFromString(created.body, XML), 'UploadId');
  const count = Math.ceil(file.size / PART_SIZE);
  const sent = new Array(count).fill(0);
  const report = () => onProgress && onProgress(sent.reduce((a, b) => a + b, 0));
  const etags = [];
  try {
    for (let start = 1; start <= count; start += 8) {   // presigned in batches, just before they are sent
      const numbers = [];
      for (let n = start; n < Math.min(start + 8, count + 1); n++) numbers.push(n);
      const urls = await presign(workspace, numbers.map((n) => ({ operation: 'UploadPart', key, upload_id: uploadId, part_number: n })));
      await Promise.all(numbers.map(async (n, i) => {
        const blob = file.slice((n - 1) * PART_SIZE, Math.min(n * PART_SIZE, file.size));
        const res = await send(urls[i].method, urls[i].url, blob, (loaded) => { sent[n - 1] = loaded; report(); });
        sent[n - 1] = blob.size; report();
        etags[n - 1] = res.etag;
      }));
    }
    const parts = etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join('');
    return await one(workspace, { operation: 'CompleteMultipartUpload', key, upload_id: uploadId },
      `<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`);
  } catch (e) {
    one(workspace, { operation: 'AbortMultipartUpload', key, upload_id: uploadId }).catch(() => {});
    throw e;
  }
}
