(function () {
  var images = document.querySelectorAll("main img");
  function tally() {
    var loaded = 0;
    images.forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) loaded++;
      else if (img.complete) img.classList.add("broken");
    });
    document.body.dataset.loaded = loaded + "/" + images.length;
  }
  images.forEach(function (img) {
    img.addEventListener("load", tally);
    img.addEventListener("error", function () { img.classList.add("broken"); tally(); });
  });
  window.addEventListener("load", tally);
})();
