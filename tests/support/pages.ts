// Reading the HTML pages the way a browser or a person would: the form token, the gallery.

/** The CSRF token from a form page, for tests that post forms like a browser. */
export function csrfTokenFrom(html: string): string {
  const match = /name="_csrf"\s+value="([^"]+)"/.exec(html);
  if (!match) throw new Error("no CSRF token in the page");
  return match[1]!;
}

/** The src of every gallery image in a page. */
export function galleryImages(html: string): string[] {
  const gallery = html.slice(html.indexOf('id="gallery"'));
  return [...gallery.matchAll(/<img[^>]*\ssrc="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, "&"));
}
