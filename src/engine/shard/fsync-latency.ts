import { encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { defaultFileIO, type FileIO } from '../../../native-free-storage/index.js';
import { createLatencyHistogram, MAX_TRACKED_MICROS } from '../../observability/latency-recorder.js';

/**
 * Times every fsync of a log (the storage layer's fault-injection seam, used here to observe): the
 * durations go into an HDR histogram in this thread, which the engine drains into its `fsync`
 * latency stage. Fixed memory, whatever the number of fsyncs.
 */
export class FsyncLatency {
  private readonly histogram: Histogram = createLatencyHistogram();

  readonly io: FileIO = {
    writeSync: (fd, data, position) => defaultFileIO.writeSync(fd, data, position),
    fsync: async (fd) => {
      const started = performance.now();
      await defaultFileIO.fsync(fd);
      this.histogram.recordValue(Math.min(MAX_TRACKED_MICROS, Math.round((performance.now() - started) * 1000)));
    },
  };

  /** The fsyncs timed since the last drain (HDR compressed base64), or null when none; starts over. */
  drain(): string | null {
    if (this.histogram.totalCount === 0) return null;
    const encoded = encodeIntoCompressedBase64(this.histogram);
    this.histogram.reset();
    return encoded;
  }
}
