import { parseCommand } from "./src/config.ts";
import { readConfigFile } from "./src/settings/file.ts";
const S3 = ["--storage", "s3", "--s3-access-key", "k", "--s3-secret-key", "s"];
console.log(parseCommand([...S3, "--s3-bucket", "images"], {}));
const { settings, problems } = readConfigFile("x.yaml", 's3-bucket: "images"\n');
console.log(problems, settings, parseCommand(S3, {}, settings));
