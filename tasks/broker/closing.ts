// amqplib settles the close of a channel or a connection only when the broker's close-ok
// arrives. If the connection dies first (a stalled link, a heartbeat timeout, a node killed)
// the close never settles, and whatever awaits it (a shutdown, a page asking the queue's
// numbers) waits forever. A consumer's cancel waits for its answer until the heartbeat gives
// up on the link. Every close and cancel in the queue layer goes through here.

/** How long a close or a cancel waits for the broker's answer: it comes in milliseconds when the link is up. */
const ANSWER_WAIT_MS = 2000;

/** Asks (a close, a cancel) and resolves on the broker's answer, on an error, or after ANSWER_WAIT_MS. */
export async function settleWithin(ask: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, ANSWER_WAIT_MS).unref()));
  // A close of what is closed already throws at once rather than rejecting.
  const answered = Promise.resolve()
    .then(ask)
    .catch(() => {});
  await Promise.race([answered, waited]).finally(() => clearTimeout(timer));
}
