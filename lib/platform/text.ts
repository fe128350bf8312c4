// Text from outside (dog.ceo's answers, error messages) is bounded before it is stored,
// logged or shown; a person sees that it was shortened.

/** Stored and logged error text is cut here. */
export const MAX_ERROR_LENGTH = 500;

export function shorten(text: string, max = MAX_ERROR_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 20)}… (shortened)`;
}
