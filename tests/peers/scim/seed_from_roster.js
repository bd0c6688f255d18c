// Writes a seed for server.js (--seed) from an HR roster CSV: one SCIM user per row (id
// "u-<employee id>", userName and work email from the email column, enterprise employeeNumber)
// and the groups named on the command line, empty. Used by scripts/demo.
//
//   node seed_from_roster.js ROSTER.csv "Group A" "Group B" ... > seed.json
//
// The roster's header must have "Employee ID", "Work Email" and "Name" columns; values must not
// contain commas (the demo roster does not).
import fs from "node:fs";
import process from "node:process";

const [rosterPath, ...groupNames] = process.argv.slice(2);
if (!rosterPath) {
  console.error("usage: node seed_from_roster.js ROSTER.csv [GROUP ...]");
  process.exit(2);
}
const lines = fs.readFileSync(rosterPath, "utf8").split(/\r?\n/).filter((l) => l.trim() !== "");
const header = lines.shift().split(",").map((h) => h.trim());
const col = (name) => {
  const i = header.indexOf(name);
  if (i < 0) {
    console.error(`${rosterPath}: no column '${name}' in the header`);
    process.exit(1);
  }
  return i;
};
const [idCol, emailCol, nameCol] = [col("Employee ID"), col("Work Email"), col("Name")];
const users = lines.map((line) => {
  const f = line.split(",").map((v) => v.trim());
  return {id: `u-${f[idCol]}`, userName: f[emailCol], email: f[emailCol],
          displayName: f[nameCol], employeeNumber: f[idCol]};
});
const groups = groupNames.map((name, i) => ({id: `g-${i + 1}`, displayName: name, members: []}));
process.stdout.write(JSON.stringify({users, groups}, null, 2) + "\n");
