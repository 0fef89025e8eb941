import { useApolloClient } from '@vue/apollo-composable';
import { computed, onActivated, onMounted, ref } from 'vue';
import { UploadLimitsDocument, type UploadLimitsQuery } from '../gql/graphql';
import { bytesInWords, formatBytes, formatNumber } from '../lib/format';

type Limits = UploadLimitsQuery['viewer']['uploadLimits'];

/** What the quota needs to know of an upload of the view's list. */
export interface CountedUpload {
  file: File;
  status: 'queued' | 'uploading' | 'done' | 'failed';
  /** Set when it is done: how many limits questions had been sent by then. */
  doneAfter?: number;
}

/**
 * What the gateway takes (`viewer.uploadLimits`), asked whenever the upload view is shown (the
 * quota's use changes with uploads and deletes made anywhere) and again after each upload while a
 * quota is set. The quota's figures count the uploads on their way, and those done since the
 * question whose answer is shown was sent: an upload is in the gateway's figure exactly when a
 * question sent after it was done has been answered. The gateway checks every upload again; this
 * only saves sending a file it would refuse.
 */
export function useUploadLimits(items: readonly CountedUpload[]) {
  const { resolveClient } = useApolloClient();
  const limits = ref<Limits>();
  let sent = 0;
  /** The number of the question whose answer `limits` holds. */
  const shown = ref(0);

  async function ask(): Promise<void> {
    const seq = ++sent;
    try {
      // Each question its own request (no sharing with one sent before an upload was done).
      const { data } = await resolveClient().query({
        query: UploadLimitsDocument,
        fetchPolicy: 'network-only',
        context: { queryDeduplication: false },
      });
      if (seq > shown.value) {
        shown.value = seq;
        limits.value = data.viewer.uploadLimits;
      }
    } catch {
      // the last figure stays; the next upload or visit asks again
    }
  }

  // Inside the app's KeepAlive, onActivated runs at the first mount too: asked once then.
  let mounted = false;
  onMounted(() => {
    mounted = true;
    void ask();
  });
  onActivated(() => {
    if (mounted) mounted = false;
    else void ask();
  });

  const quota = computed(() => {
    const q = limits.value?.quota;
    if (!q) return null;
    const pending = items.filter(
      (i) =>
        i.status === 'queued' ||
        i.status === 'uploading' ||
        (i.status === 'done' && (i.doneAfter ?? 0) >= shown.value),
    );
    const usedBytes = q.usedBytes + pending.reduce((n, i) => n + i.file.size, 0);
    const usedFiles = q.usedFiles + pending.length;
    const shares = [q.maxBytes ? usedBytes / q.maxBytes : 0, q.maxFiles ? usedFiles / q.maxFiles : 0];
    return { ...q, usedBytes, usedFiles, share: Math.min(1, Math.max(...shares)) };
  });

  const quotaText = computed(() => {
    const q = quota.value;
    if (!q) return '';
    const parts: string[] = [];
    if (q.maxFiles != null) parts.push(`${formatNumber(q.usedFiles)} of ${formatNumber(q.maxFiles)} images`);
    if (q.maxBytes != null) parts.push(`${formatBytes(q.usedBytes)} of ${formatBytes(q.maxBytes)}`);
    return `${parts.join(' and ')} used`;
  });

  /**
   * Why the gateway would refuse this file before reading it, in its own words; undefined when it
   * may go. Asked with the file not yet among `items`.
   */
  function refusal(file: File): string | undefined {
    const l = limits.value;
    if (!l) return undefined;
    if (file.size === 0) return 'The file is empty';
    if (file.size > l.maxFileBytes) {
      // No parentheses around the size: it carries its own ("2 MiB (2,097,153 bytes)").
      return `The file is ${bytesInWords(file.size)}, larger than the upload limit of ${bytesInWords(l.maxFileBytes)}`;
    }
    const q = quota.value;
    if (q?.maxFiles != null && q.usedFiles >= q.maxFiles) {
      return `The upload quota of ${q.maxFiles} ${q.maxFiles === 1 ? 'image' : 'images'} is used up; delete an image to upload another`;
    }
    if (q?.maxBytes != null && q.usedBytes + file.size > q.maxBytes) {
      const left = Math.max(0, q.maxBytes - q.usedBytes);
      return `The file is ${bytesInWords(file.size)}, more than is left of the upload quota: ${bytesInWords(left)} of ${bytesInWords(q.maxBytes)}`;
    }
    return undefined;
  }

  /** An upload went through: counted here until an answer sent after now has it. */
  function done(item: CountedUpload): void {
    item.doneAfter = sent;
    if (limits.value?.quota) void ask();
  }

  return { limits, quota, quotaText, refusal, done };
}
