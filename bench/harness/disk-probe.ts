import crypto from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const MB = 1e6;

export interface SequentialWriteResult {
  bytes: number;
  elapsedMs: number;
  mbPerS: number;
}

/**
 * Raw sequential write bandwidth of the disk under `file`: chunked writeSync to a fresh file,
 * one fsync at the end, fsync included in the time (so page-cache speed is not what is measured).
 */
export function measureSequentialWrite(file: string, totalBytes: number, chunkBytes = 1 << 20): SequentialWriteResult {
  const chunk = crypto.randomBytes(chunkBytes);
  const fd = fs.openSync(file, 'w');
  try {
    const start = performance.now();
    let written = 0;
    while (written < totalBytes) {
      written += fs.writeSync(fd, chunk, 0, Math.min(chunkBytes, totalBytes - written), written);
    }
    fs.fsyncSync(fd);
    const elapsedMs = performance.now() - start;
    return { bytes: written, elapsedMs, mbPerS: written / MB / (elapsedMs / 1000) };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

/**
 * Latency of one small durable append: a `blockBytes` write at the end of the file followed by
 * fsync (what the log's default FileIO calls). Appending (not overwriting) makes each sync also
 * commit the new file size, which is what a log's fsync pays. Returns microseconds per sample, unsorted.
 */
export function measureSyncLatencyUs(file: string, samples: number, blockBytes = 4096): number[] {
  const block = crypto.randomBytes(blockBytes);
  const fd = fs.openSync(file, 'w');
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      fs.writeSync(fd, block, 0, blockBytes, i * blockBytes);
      fs.fsyncSync(fd);
      latencies.push((performance.now() - start) * 1000);
    }
    return latencies;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}
