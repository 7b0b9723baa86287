// Search for Korean words. mdBook builds its search index at build time
// with elasticlunr's English pipeline, whose trimmer keeps only ASCII
// letters, digits and `_`: a Hangul word never reaches the index, and a
// Korean query finds nothing (mdBook#1081). The index still stores each
// section's text (its document store, for the result teasers), so a query
// with a character outside ASCII is answered here instead, by finding its
// words as substrings of that text. Korean attaches particles to words
// (네임스페이스는, 네임스페이스를), so a substring, not a whole token, is
// what a reader means. An ASCII query goes to elasticlunr as before.
(function () {
    "use strict";
    if (typeof elasticlunr === "undefined") {
        return;
    }
    const indexSearch = elasticlunr.Index.prototype.search;
    const beyondAscii = /[^\x00-\x7f]/;

    function occurrences(text, word) {
        let count = 0;
        for (let at = text.indexOf(word); at !== -1; at = text.indexOf(word, at + word.length)) {
            count += 1;
        }
        return count;
    }

    // The same shape elasticlunr returns: {ref, score, doc}, best first.
    // A word found in a field scores the field's boost in the book's
    // search options (a title counts twice), plus the logarithm of how
    // often it occurs there, so that a section that only repeats a word
    // does not outrank one about it; any word found is enough, as with
    // the book's `bool = "OR"`.
    function substringSearch(store, query, options) {
        const words = query.toLowerCase().split(/\s+/).filter((word) => word !== "");
        const fields = (options && options.fields) || { title: { boost: 2 }, body: { boost: 1 } };
        const results = [];
        for (const ref of Object.keys(store.docs)) {
            const doc = store.docs[ref];
            let score = 0;
            for (const field of Object.keys(fields)) {
                const text = String(doc[field] || "").toLowerCase();
                const boost = fields[field].boost || 1;
                for (const word of words) {
                    const count = occurrences(text, word);
                    if (count > 0) {
                        score += boost * (1 + Math.log(count));
                    }
                }
            }
            if (score > 0) {
                results.push({ ref: ref, score: score, doc: doc });
            }
        }
        // Best first; among equals, in the book's order.
        results.sort((a, b) => b.score - a.score || Number(a.ref) - Number(b.ref));
        return results;
    }

    elasticlunr.Index.prototype.search = function (query, options) {
        if (beyondAscii.test(query) && this.documentStore && this.documentStore.docs) {
            return substringSearch(this.documentStore, query, options);
        }
        return indexSearch.call(this, query, options);
    };
})();
