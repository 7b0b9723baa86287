// The link to the same page in the other edition, in the menu bar. The
// English edition is built into book/, the Korean one into book/ko/ (see
// the README), so the Korean page of ch00-process.html is
// ko/ch00-process.html, and back is ../ch00-process.html.
(function () {
    "use strict";
    const korean = document.documentElement.lang === "ko";
    const page = window.location.pathname.split("/").pop() || "index.html";
    const link = document.createElement("a");
    link.className = "language-switch";
    link.href = (korean ? "../" : "ko/") + page + window.location.hash;
    link.lang = korean ? "en" : "ko";
    link.hreflang = link.lang;
    link.textContent = korean ? "English" : "한국어";
    link.title = korean ? "Read this page in English" : "이 페이지를 한국어로 읽기";
    const buttons = document.querySelector(".right-buttons");
    if (buttons) {
        buttons.prepend(link);
    }
})();
