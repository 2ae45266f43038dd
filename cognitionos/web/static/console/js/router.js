// Hash routes: "#/executions/<id>?tab=history". Reloading keeps the place.

export function parse(hash = location.hash) {
  const raw = hash.replace(/^#/, "") || "/executions";
  const [path, search = ""] = raw.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(search)), raw };
}

export function href(path, query = {}) {
  const params = new URLSearchParams(
    Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  ).toString();
  return `#${path}${params ? `?${params}` : ""}`;
}

export function go(path, query) {
  location.hash = href(path, query);
}

/** Change the query of the current route without a new history entry or a re-mount. */
export function setQuery(query) {
  const { path } = parse();
  history.replaceState(null, "", href(path, query));
}
