// MathJax is served from this site (copied from a PyPI package at build time).
// Arithmatex wraps page math in \( \) and \[ \]; notebook cells keep raw $...$.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  startup: { typeset: false },
};

// Material's instant navigation swaps the page without a reload: typeset
// every time a page is shown, and only the elements that hold math.
document$.subscribe(() => {
  const roots = document.querySelectorAll(".arithmatex, .jp-RenderedMarkdown");
  MathJax.startup.promise.then(() => {
    MathJax.typesetClear();
    MathJax.texReset();
    return MathJax.typesetPromise([...roots]);
  });
});
